/// protreplay's version, printed by `--version` and written into every JSON and HTML report (`tool.*`).
public enum ToolVersion {
    public static let version = "0.16.0"
    /// `protreplay 0.16.0`.
    public static var description: String { "protreplay \(version)" }
}
