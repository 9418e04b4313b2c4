"""The packaged app's entry script (PyInstaller runs it as __main__)."""

from desktop.launcher import main

raise SystemExit(main())
