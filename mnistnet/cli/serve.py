"""``mnistnet serve``: a page where you draw a digit and watch the network read it.

\b
  mnistnet serve runs/multiclass/model.npz --open
  mnistnet serve model.npz --port 0          # a free port, printed

Parse, call :func:`mnistnet.server.make_server`, print the address, serve
until Ctrl-C.
"""

import click

from mnistnet.cli._common import handle_errors


@click.command()
@click.argument("model", metavar="MODEL.npz", type=click.Path(path_type=str))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. 0.0.0.0 makes the page reachable from other machines.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the web browser.")
@handle_errors
def serve(model, host, port, open_browser):
    """Serve a page to draw digits on and see what the model reads, live.

    The page (mouse, finger or pen) shows the predicted digit, the ten
    probabilities and the 28x28 image the network saw; it can also read a
    photo. Its API: POST /api/predict with a PNG or JPEG body returns the
    JSON of `mnistnet predict`; GET /api/model the model's facts. Only this
    machine can reach it unless --host says otherwise.

    \b
    Examples:
      mnistnet serve runs/multiclass/model.npz --open
      mnistnet serve model.npz --port 0

    Exit codes: 1 bad model file or an address that cannot be used,
    2 usage error, 130 stopped with Ctrl-C (the normal way to stop it),
    143 stopped by SIGTERM.
    """
    from mnistnet.console import escape_control
    from mnistnet.server import is_wildcard, make_server

    server = make_server(model, host, port)
    with server:
        click.echo(f"Serving the page at {server.url} (Ctrl-C stops)")
        if not server.loopback:
            where = "every network interface" if is_wildcard(host) else escape_control(host)
            click.echo(
                f"Warning: listening on {where}: anyone who can reach this machine over "
                "the network can use the page and its API.",
                err=True,
            )
        if open_browser:
            import webbrowser

            webbrowser.open(server.url)
        server.serve_forever()
