from perpool.demo.cli import main

raise SystemExit(main())
