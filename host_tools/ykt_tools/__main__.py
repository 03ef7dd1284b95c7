from ykt_tools.cli import main

raise SystemExit(main())
