import EventModel
import Replay

/// Every model's requirements, by name, in report order (`protreplay events` says which model reads
/// each event; the report's coverage section comes from the same lists).
public enum ModelCatalog {
    public static let requirements: [(name: String, requirements: ModelRequirements)] = [
        ("highmem", HighmemModel.requirements), ("pks", PKSModel.requirements),
        ("s390pv", S390PVModel.requirements), ("directmap", DirectMapModel.requirements),
    ]

    /// The models that read `event` (one of their needed probes records it).
    public static func readers(of event: EventNormalizer.NameSummary) -> [String] {
        requirements.filter { $0.requirements.needs.contains { $0.probes.contains(where: event.records) } }.map(\.name)
    }
}
