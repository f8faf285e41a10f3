"""The `kvmpmu` command and `python -m kvmpmu`: the collector goes off before click loads."""

from kvmpmu.cli import process


def main() -> None:
    process.start()
    from kvmpmu.cli.main import main as run_command_line

    run_command_line()


if __name__ == "__main__":
    main()
