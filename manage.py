"""``python manage.py <args>``: the same CLI as the ``cephalopod`` command (original layout)."""

from cephalopod.cli import main

if __name__ == "__main__":
    main()
