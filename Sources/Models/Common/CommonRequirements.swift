import EventModel
import Replay

/// Requirements every model shares: who runs where.
enum CommonRequirements {
    static let contexts = EventRequirement(
        [.tracepoint("sched_switch")],
        gives: "the task on each CPU; effective windows are cut at sched-out",
        withoutIt: "tasks come only from the pid column: preemption and sched-out are unobservable, effective windows are not cut by them")
    static let irqs = EventRequirement(
        [.tracepoint("irq_handler_entry"), .tracepoint("irq_handler_exit"), .tracepoint("softirq_entry"), .tracepoint("softirq_exit")],
        gives: "IRQ and softirq instances with their exact entry and exit",
        withoutIt: "IRQ/softirq instances come only from the flag column (h/s), and end at the next event without the flag")
    static let forkExit = EventRequirement(
        [.tracepoint("sched_process_fork"), .tracepoint("sched_process_exit")],
        gives: "task creation and exit (state known exactly from fork; windows close at exit)",
        withoutIt: "fork/exit with open grants is unobservable; a task's windows stay open to the trace end")
}
