import ArgumentParser

@main
struct Protreplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "protreplay",
        abstract: "Replay kernel traces through memory-protection models: exposure windows and unprotected accesses.",
        discussion: """
        Examples:
          protreplay report SampleTraces/real/6.1.0-686-pae-i386-workload/trace.lz4
          protreplay report trace.txt --format json -o report.json --windows windows.csv
          protreplay events trace.txt
        """,
        subcommands: [Report.self, Events.self],
        defaultSubcommand: Report.self
    )
}
