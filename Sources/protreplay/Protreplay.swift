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
          protreplay report trace.txt --format html -o report.html --accesses accesses.csv
          protreplay compare before=a.lz4 after=b.lz4 --fail-if 'exposure.effective.total_ns>+10%'
          protreplay compare trace.lz4 --config model=highmem --config "model=pks,kmap-global=flag-fault"
          protreplay merge reports/*.json -o fleet.json
          protreplay events trace.txt
        """,
        subcommands: [Report.self, Windows.self, Events.self, Compare.self, Merge.self],
        defaultSubcommand: Report.self
    )
}
