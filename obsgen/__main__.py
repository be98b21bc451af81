from obsgen.cli import main

main(prog_name="obsgen")
