from vidinpaint.bench import main

main()
