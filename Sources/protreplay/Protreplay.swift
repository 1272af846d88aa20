import ArgumentParser
import ProtReplayKit
import BuildInfo
#if canImport(Glibc)
import Glibc
#endif

@main
struct Protreplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "protreplay",
        abstract: "Replay kernel traces through memory-protection models: exposure windows and unprotected accesses.",
        discussion: """
        Exit status: 0 success, 2 bad input or bad usage, 3 a --fail-if condition held.

        Examples:
          protreplay report SampleTraces/real/6.1.0-50-686-pae-i386-workload/trace.lz4
          protreplay report SampleTraces/real/6.1.0-50-686-pae-i386-workload/trace.lz4 --pid 1 --time 7.113,7.2
          protreplay report trace.txt --format json -o report.json --windows windows.csv
          protreplay report trace.txt --format html -o report.html --accesses accesses.csv
          protreplay windows SampleTraces/real/6.1.0-50-686-pae-i386-workload/trace.lz4 --sort duration --limit 10
          protreplay compare before=a.lz4 after=b.lz4 --fail-if 'exposure.effective.total_ns>+10%'
          protreplay compare trace.lz4 --config model=highmem --config "model=pks,kmap-global=flag-fault"
          protreplay merge reports/*.json -o fleet.json
          protreplay events trace.txt
        """,
        version: ToolVersion.description,
        subcommands: [Report.self, Windows.self, Events.self, Compare.self, Merge.self, Record.self, Probes.self],
        defaultSubcommand: Report.self
    )

    /// Like `ParsableCommand.main()`, with bad usage exiting 2 (as bad input does; docs/fleet.md) instead
    /// of ArgumentParser's 64.
    static func main() {
        ToolVersion.commit = BuildInfo.commit
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                fputs(fullMessage(for: error) + "\n", stderr)
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}
