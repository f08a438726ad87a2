"""Command line: ``python -m fastrelu bench [options]`` or ``python -m fastrelu config``."""
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    command, rest = (argv[0], argv[1:]) if argv else ("bench", [])
    if command == "bench":
        from fastrelu._bench import main as bench_main
        return bench_main(rest)
    if command in ("config", "show-config"):
        import fastrelu
        fastrelu.show_config()
        return 0
    print("usage: python -m fastrelu {bench,config} [options]   "
          "(python -m fastrelu bench --help)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
