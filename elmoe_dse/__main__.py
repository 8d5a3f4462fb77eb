"""``python -m elmoe_dse``: the same as the ``elmoe-dse`` command."""

from elmoe_dse.cli.toplevel import main

main()
