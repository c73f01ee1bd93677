from waferview.cli.main import main

raise SystemExit(main())
