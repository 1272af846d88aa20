import EventModel
import Replay

/// Every model the tool has, in report order. Adding a model: its folder under `Sources/Models/` with a
/// `descriptor`, and one line here.
public enum ModelRegistry {
    public static let all: [ModelDescriptor] = [
        HighmemModel.descriptor,
        PKSModel.descriptor,
        S390PVModel.descriptor,
        DirectMapModel.descriptor,
    ]

    public static var names: [String] { all.map(\.name) }

    public static func descriptor(named name: String) -> ModelDescriptor? { all.first { $0.name == name } }

    /// Every option key of every model, once, in registry order.
    public static var optionSpecs: [ModelOptionSpec] {
        var seen: Set<String> = []
        return all.flatMap(\.options).filter { seen.insert($0.key).inserted }
    }

    /// The models that read `event` (one of their needed probes records it): `protreplay events`.
    public static func readers(of event: EventNormalizer.NameSummary) -> [String] {
        all.filter { $0.requirements.needs.contains { $0.probes.contains(where: event.records) } }.map(\.name)
    }
}
