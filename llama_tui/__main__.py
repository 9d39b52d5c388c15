from llama_tui.cli import main

main()
