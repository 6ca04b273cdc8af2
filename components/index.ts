// bluegreen as a library: the components a Pulumi program of your own composes, and the config
// reader that validates their settings. docs/library.md shows a program with two apps on one host.
export { BlueGreenApp } from "./app/bluegreenApp";
export type { AppNaming, BlueGreenAppArgs } from "./app/bluegreenApp";
export { preflight, missingTools } from "./app/preflight";
export type { ResolvedArtifact } from "./app/artifact";
export { Host } from "./host/host";
export { balancerFor, hostsFor } from "./host/fleet";
export { FleetSwitch } from "./app/fleetSwitch";
export type { FleetHost, FleetSwitchArgs } from "./app/fleetSwitch";
export { Drain } from "./app/drain";
export type { HostArgs, HostConnection, HostNetwork } from "./host/host";
// Several Hetzner servers behind one Hetzner load balancer, on one private network.
export { HetznerNetwork, networkPlan, networkZoneOf } from "./host/network";
export type { HetznerNetworkArgs, NetworkPlan } from "./host/network";
export { HetznerBalancer } from "./host/balancer";
export type { BalancerHealth, BalancerServer, BalancerTls, HetznerBalancerArgs } from "./host/balancer";
export { ConfigError, configFrom, loadConfig, publicUrl } from "./config";
export type { BalancerConfig, BluegreenConfig, ConfigSource, ConfigValues } from "./config";
// The parts BlueGreenApp composes, for a program that composes them differently.
export { HostSetup } from "./host/setup";
export { HostPackages } from "./host/packages";
export { Router } from "./router/router";
export { Tls } from "./app/tls";
export { Slot } from "./app/slot";
export { Maintenance } from "./app/maintenance";
export { TrafficSwitch } from "./app/trafficSwitch";
export { ReleaseRetention } from "./app/retention";
export { Backups } from "./app/backups";
export { Notifications } from "./app/notifications";
export { Metrics } from "./app/metrics";
export { appLayout, COLORS } from "./host/layout";
export type { AppLayout, Color, RouterKind } from "./host/layout";
