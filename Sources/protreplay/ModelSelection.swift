import ArgumentParser
import Models
import ProtReplayKit

/// `--model` and the options of each protection model (`ModelRegistry` declares them; the defaults
/// shown here are the registry's).
struct ModelSelection: ParsableArguments {
    @Option(name: .long, help: "Protection model(s): highmem, pks, s390pv, directmap, a comma-separated list, or auto (every model whose events are in the trace).")
    var model: String = "highmem"

    @Option(name: .long, help: ArgumentHelp(ModelSelection.help("mode")))
    var mode: String = ModelSelection.defaultValue("mode")

    @Option(name: .long, help: ArgumentHelp(ModelSelection.help("kmap-global")))
    var kmapGlobal: String = ModelSelection.defaultValue("kmap-global")

    @Option(name: .long, help: ArgumentHelp(ModelSelection.help("context-end")))
    var contextEnd: String = ModelSelection.defaultValue("context-end")

    @Option(name: .long, help: ArgumentHelp(ModelSelection.help("protect")))
    var protect: String?

    @Option(name: .long, help: ArgumentHelp(ModelSelection.help("after-revoke-ns")))
    var afterRevokeNs: UInt64 = UInt64(ModelSelection.defaultValue("after-revoke-ns"))!

    @Option(name: .long, help: ArgumentHelp(ModelSelection.help("foll-pin")))
    var follPin: String = ModelSelection.defaultValue("foll-pin")

    static func spec(_ key: String) -> ModelOptionSpec { ModelRegistry.optionSpecs.first { $0.key == key }! }
    static func help(_ key: String) -> String { spec(key).help }
    static func defaultValue(_ key: String) -> String { spec(key).defaultValue }

    /// The selection as the pipeline takes it.
    var configuration: ModelConfiguration {
        var o = ["mode": mode, "kmap-global": kmapGlobal, "context-end": contextEnd, "after-revoke-ns": String(afterRevokeNs), "foll-pin": follPin]
        if let protect { o["protect"] = protect }
        return ModelConfiguration(model: model, options: o)
    }

    func validate() throws {
        do { try configuration.validate() } catch { throw ValidationError("\(error)") }
    }
}
