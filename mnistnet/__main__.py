"""``python -m mnistnet`` runs the command-line tool."""

from mnistnet.cli import main

if __name__ == "__main__":
    main()
