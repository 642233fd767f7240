from studio.app.main import main

raise SystemExit(main())
