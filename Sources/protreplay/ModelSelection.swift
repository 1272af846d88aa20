import ArgumentParser
import Models
import ProtReplayKit

/// `--model` and the options of each protection model (`ModelRegistry` declares them; the defaults
/// shown here are the registry's).
struct ModelSelection: ParsableArguments {
    @Option(name: .long, help: "Protection model(s): highmem, pks, s390pv, directmap, a comma-separated list, or auto: every model whose events are in the trace, observed models first, what-ifs labelled (the default).")
    var model: String = "auto"

    @Option(name: .long, help: ArgumentHelp(ModelSelection.help("mode")))
    var mode: String?

    @Option(name: .long, help: ArgumentHelp(ModelSelection.help("kmap-global")))
    var kmapGlobal: String?

    @Option(name: .long, help: ArgumentHelp(ModelSelection.help("context-end")))
    var contextEnd: String?

    @Option(name: .long, help: ArgumentHelp(ModelSelection.help("protect")))
    var protect: String?

    @Option(name: .long, help: ArgumentHelp(ModelSelection.help("after-revoke-ns")))
    var afterRevokeNs: UInt64?

    @Option(name: .long, help: ArgumentHelp(ModelSelection.help("foll-pin")))
    var follPin: String?

    static func spec(_ key: String) -> ModelOptionSpec { ModelRegistry.optionSpecs.first { $0.key == key }! }
    /// The registry's help, with the default the model uses when the option is not given.
    static func help(_ key: String) -> String {
        let d = spec(key).defaultValue
        return spec(key).help + (d.isEmpty ? "" : " (default: \(d))")
    }
    static func defaultValue(_ key: String) -> String { spec(key).defaultValue }

    /// The selection as the pipeline takes it.
    var configuration: ModelConfiguration {
        // Only the options given: the others take each model's default.
        let given: [(String, String?)] = [("mode", mode), ("kmap-global", kmapGlobal), ("context-end", contextEnd), ("protect", protect),
                                          ("after-revoke-ns", afterRevokeNs.map(String.init)), ("foll-pin", follPin)]
        var o: [String: String] = [:]
        for case let (k, v?) in given { o[k] = v }
        return ModelConfiguration(model: model, options: o)
    }

    func validate() throws {
        do {
            try configuration.validate()
            try configuration.checkOptionsApply()
        } catch { throw ValidationError("\(error)") }
    }
}
