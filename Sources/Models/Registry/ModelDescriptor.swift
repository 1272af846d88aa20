import TraceIngest
import EventModel
import Replay

/// One option of a model (`--mode`, `--protect`, ... on the command line; `mode=strict` in `--config`).
public struct ModelOptionSpec: Sendable {
    /// Lower-kebab-case key: `kmap-global`, `after-revoke-ns`.
    public var key: String
    public var help: String
    /// The value used when the option is not given.
    public var defaultValue: String
    /// The values it takes, when it is an enumeration (`--config` shorthands are these words).
    public var values: [String]
    /// Checks a value: nil if it is fine, else the message (`--mode must be strict, relaxed, silent or off`).
    public var check: @Sendable (String) -> String?

    public init(key: String, help: String, defaultValue: String, values: [String] = [], check: (@Sendable (String) -> String?)? = nil) {
        self.key = key; self.help = help; self.defaultValue = defaultValue; self.values = values
        self.check = check ?? { v in
            values.isEmpty || values.contains(v) ? nil : "--\(key) must be \(ModelOptionSpec.list(values))"
        }
    }

    /// `a, b or c`.
    static func list(_ words: [String]) -> String {
        words.count <= 1 ? words.joined() : words.dropLast().joined(separator: ", ") + " or " + words.last!
    }
}

/// What a model needs to be built: the run's address resolver and symbol table.
public struct ModelBuildContext {
    public var resolver: AddressResolver
    public var symbols: StringTable
    public init(resolver: AddressResolver, symbols: StringTable) { self.resolver = resolver; self.symbols = symbols }
}

/// A protection design as the tool knows it: its name, its options, the events it needs, and how it is
/// built from option values. Each model declares one in its own folder (`<Model>+Descriptor.swift`);
/// `ModelRegistry.all` lists them.
public struct ModelDescriptor: Sendable {
    public var name: String
    public var options: [ModelOptionSpec]
    public var requirements: ModelRequirements
    /// Builds the model from its option values (every declared key present, checked).
    public var make: @Sendable (ModelBuildContext, [String: String]) -> ProtectionModel

    public init(name: String, options: [ModelOptionSpec], requirements: ModelRequirements,
                make: @escaping @Sendable (ModelBuildContext, [String: String]) -> ProtectionModel) {
        self.name = name; self.options = options; self.requirements = requirements; self.make = make
    }
}
