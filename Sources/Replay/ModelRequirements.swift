import EventModel

/// One thing a model reads from a trace: any one of `probes` provides it.
public struct EventRequirement: Sendable {
    public var probes: [ProbePoint]
    /// What the model learns from it.
    public var gives: String
    /// What cannot be observed when the trace has none of `probes` (the report prints it as the consequence).
    public var withoutIt: String
    /// Without it the model has nothing to replay (as opposed to one part of the picture going missing).
    public var essential: Bool

    public init(_ probes: [ProbePoint], gives: String, withoutIt: String, essential: Bool = false) {
        self.probes = probes; self.gives = gives; self.withoutIt = withoutIt; self.essential = essential
    }
}

/// What a model needs from a capture (docs/models.md "Needs"), and which events show that the traced
/// kernel has the mechanism the model describes: with them the results are `observed`, without them a
/// replay answers "what if" (spec, Reporting conventions, "Observed or what-if").
public struct ModelRequirements: Sendable {
    public var needs: [EventRequirement]
    /// Any of these in the trace shows the traced kernel has the mechanism.
    public var mechanism: [ProbePoint]
    /// Said of an observed result ("the traced kernel has HIGHMEM: its kmap_high/__kmap_local_* probes fired").
    public var observedMeans: String
    /// Said of a what-if result.
    public var whatIfMeans: String

    public init(needs: [EventRequirement], mechanism: [ProbePoint], observedMeans: String, whatIfMeans: String) {
        self.needs = needs; self.mechanism = mechanism; self.observedMeans = observedMeans; self.whatIfMeans = whatIfMeans
    }
}
