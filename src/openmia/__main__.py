from openmia.cli.main import main

raise SystemExit(main())
