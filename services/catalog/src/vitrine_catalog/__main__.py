from vitrine_catalog.app import main

main()
