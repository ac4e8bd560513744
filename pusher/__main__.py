from pusher.cli import main

main()
