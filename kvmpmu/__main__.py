from kvmpmu.cli.process import main

main()
