"""The command-line programs: each module parses its flags and calls one library function."""
