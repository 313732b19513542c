from claimbench.cli import main

main()
