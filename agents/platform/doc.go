// Package platform is `paddock up` as an agent of its own: it brings up a
// whole platform on one host and keeps it running. Config says what to
// start; Run(ctx, cfg) walks the phases (ZooKeeper → platform → director
// → link → agents → ready), then serves until ctx ends or a service
// fails, and takes one shutdown path whatever happened: stop the
// services, wait for them, close the stores, release the pid lock.
//
// Two modes share the phases: in-process (the agents' Config/Run in this
// process, the supervisor behind `up --headless`) and containers (each
// service in its own container of paddock/platform:<version>-<sha>). Down,
// Spawn and Follow are the other verbs of the same state dir: stop what
// up started, start the supervisor detached, follow its progress.
//
// It owns the files it keeps in the state dir (up.pid, up.json,
// logs/up.log, credentials/api-key, credentials/zookeeper-super) and the
// paddock.up label on Docker objects. It must not hold flags or print
// for the CLI: cmd maps flags to Config and prints results.
//
// Adding a phase: write a method func(*run, context.Context) error and
// put it in (*run).phases in order; what it starts in-process goes
// through r.services.start, so the shutdown path stops it.
package platform
