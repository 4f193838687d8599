"""`python -m genmed` is the same as the `genmed` command."""

from genmed.cli import main

if __name__ == "__main__":
    main()
