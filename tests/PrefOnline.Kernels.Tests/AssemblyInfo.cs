// The kernel level and the thread count are process-wide settings that several tests change in
// turn: the tests of this assembly run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
