"""Command line: ``python -m fastrelu bench [options]`` or ``python -m fastrelu config``."""
import sys

USAGE = """usage: python -m fastrelu {bench,config} [options]

commands:
  bench    time fastrelu against its peers (the default; python -m fastrelu bench --help)
  config   print the build and runtime configuration (fastrelu.show_config)"""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    command, rest = (argv[0], argv[1:]) if argv else ("bench", [])
    if command in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if command == "bench" or command.startswith("-"):
        from fastrelu._bench import main as bench_main
        return bench_main(rest if command == "bench" else argv)
    if command in ("config", "show-config"):
        if rest:
            print(f"python -m fastrelu config: unexpected argument {rest[0]!r}", file=sys.stderr)
            return 2
        import fastrelu
        fastrelu.show_config()
        return 0
    print(USAGE, file=sys.stderr)
    print(f"python -m fastrelu: unknown command {command!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
