"""``python -m pytest_otto``: the ``otto`` command."""

from pytest_otto.cli import console_main

if __name__ == "__main__":
    console_main()
