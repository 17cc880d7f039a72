from harness_operator.cli.main import main

main()
