"""``python -m cephalopod``: the same CLI as the ``cephalopod`` command."""

from cephalopod.cli import main

main()
