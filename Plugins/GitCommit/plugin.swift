import Foundation
import PackagePlugin

/// Writes `GitCommit.swift` (the checkout's commit, `git describe --always --dirty`) for the target that uses
/// it, before every build, so `--version` and every report name the commit the binary was built from.
@main
struct GitCommit: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let out = context.pluginWorkDirectoryURL.appending(path: "GitCommit.swift")
        let repo = context.package.directoryURL.path
        // `unknown` outside a git checkout (a source tarball): the build must not fail for want of git.
        let script = """
            c=$(git -C '\(repo)' describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
            new="/// Generated at build time by Plugins/GitCommit.
            public enum GitCommit { public static let id = \\"$c\\" }"
            [ "$(cat '\(out.path)' 2>/dev/null)" = "$new" ] || printf '%s\\n' "$new" > '\(out.path)'
            """
        return [.prebuildCommand(displayName: "GitCommit", executable: URL(fileURLWithPath: "/bin/sh"),
                                 arguments: ["-c", script], outputFilesDirectory: context.pluginWorkDirectoryURL)]
    }
}
