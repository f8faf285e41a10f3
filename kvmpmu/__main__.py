from kvmpmu.cli.main import main

main()
