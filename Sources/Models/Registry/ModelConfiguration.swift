import TraceIngest
import EventModel
import Replay

/// Which models to run and with which option values: what `--model` and the model options say on the
/// command line, or one `--config` of a what-if comparison.
public struct ModelConfiguration: Sendable, Equatable {
    /// `highmem,pks` or `auto`, as given.
    public var model: String
    /// Options given explicitly (key -> value); the others take each model's default.
    public var options: [String: String]

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public init(model: String = "highmem", options: [String: String] = [:]) {
        self.model = model
        self.options = options
    }

    public var isAuto: Bool { model == "auto" }

    /// The selected model names (`auto`: all of them).
    public var names: [String] {
        isAuto ? ModelRegistry.names : model.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    public func validate() throws {
        guard !model.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw Invalid(description: "--model is empty; give \(ModelRegistry.names.joined(separator: ", ")) or auto")
        }
        for n in names where ModelRegistry.descriptor(named: n) == nil {
            throw Invalid(description: "unknown model '\(n)'; available: \(ModelRegistry.names.joined(separator: ", ")), auto")
        }
        for spec in ModelRegistry.optionSpecs {
            if let v = options[spec.key], let message = spec.check(v) { throw Invalid(description: message) }
        }
    }

    /// Every option given belongs to a selected model (`--mode strict` with `--model highmem` is a mistake,
    /// not a no-op). With `auto` any model may be selected, so every option applies.
    public func checkOptionsApply() throws {
        guard !isAuto else { return }
        let selected = names.compactMap(ModelRegistry.descriptor(named:))
        for k in options.keys.sorted() where !selected.contains(where: { d in d.options.contains { $0.key == k } }) {
            let owners = ModelRegistry.all.filter { d in d.options.contains { $0.key == k } }.map(\.name)
            throw Invalid(description: "--\(k) is an option of \(owners.joined(separator: ", ")), which --model \(model) does not select")
        }
    }

    public func makeModels(_ context: ModelBuildContext) throws -> [ProtectionModel] {
        try validate()
        return names.map { name in
            let d = ModelRegistry.descriptor(named: name)!
            var values: [String: String] = [:]
            for spec in d.options { values[spec.key] = options[spec.key] ?? spec.defaultValue }
            return d.make(context, values)
        }
    }

    /// One `--config` of a what-if comparison, on top of `base` (the command line's selection): a
    /// comma-separated list of `KEY=VALUE` (any model option, or `model`) and shorthands: a model name or
    /// `auto`, or a value that only one option takes (`strict` -> `mode=strict`, `flag-fault` ->
    /// `kmap-global=flag-fault`). A configuration that sets an option of one model only runs that model,
    /// unless it names a model or the base selection already includes it.
    public static func parse(config: String, base: ModelConfiguration) throws -> ModelConfiguration {
        func fail(_ m: String) -> Invalid { Invalid(description: "--config '\(config)': \(m)") }
        let specs = ModelRegistry.optionSpecs
        let keys = Set(specs.map(\.key) + ["model"])
        var given: [String: String] = [:]
        for part in config.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            if let eq = part.firstIndex(of: "=") {
                let k = String(part[..<eq]).replacingOccurrences(of: "_", with: "-"), v = String(part[part.index(after: eq)...])
                guard keys.contains(k) else { throw fail("unknown option '\(k)'; known: \(keys.sorted().joined(separator: ", "))") }
                given[k] = v
            } else if ModelRegistry.names.contains(part) || part == "auto" {
                given["model"] = part
            } else if let spec = specs.filter({ $0.values.contains(part) }).first, specs.filter({ $0.values.contains(part) }).count == 1 {
                given[spec.key] = part
            } else {
                throw fail("'\(part)' is not KEY=VALUE or a known shorthand")
            }
        }
        var c = base
        for (k, v) in given where k != "model" { c.options[k] = v }
        if let m = given["model"] {
            c.model = m
        } else {
            // An option only one model has selects that model.
            let owners = Set(given.keys.compactMap { k -> String? in
                let models = ModelRegistry.all.filter { d in d.options.contains { $0.key == k } }
                return models.count == 1 ? models[0].name : nil
            })
            if owners.count == 1, let only = owners.first, base.isAuto || !base.names.contains(only) { c.model = only }
        }
        do { try c.validate() } catch let e as Invalid { throw fail(e.description) }
        return c
    }
}
