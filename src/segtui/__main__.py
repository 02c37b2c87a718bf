from segtui.cli import main

raise SystemExit(main())
