"""``python -m cephalopod``: the same CLI as the ``cephalopod`` command."""

from cephalopod.cli import main

if __name__ == "__main__":  # guarded: spawned writer processes re-import the main module
    main()
