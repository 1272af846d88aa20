/// What a binary knows about its own build: the commit it was built from (`GitCommit.id`, written by the
/// GitCommit build plugin).
public enum BuildInfo {
    public static var commit: String { GitCommit.id }
}
