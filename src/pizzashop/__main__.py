from pizzashop.cli import main

main()
