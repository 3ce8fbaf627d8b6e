from vitrine_detector.app import main

main()
