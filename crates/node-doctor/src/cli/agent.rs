//! `node-doctor agent`: the arguments into the agent crate's `Args`; the work is there.

use super::AgentArgs;

pub fn run(args: &AgentArgs) -> anyhow::Result<u8> {
    let config = super::settings::load(&args.settings, &[])?;
    node_doctor_agent::run(node_doctor_agent::Args {
        root: args.root.root.clone(),
        config,
        node_name: args.node_name.clone(),
        pod_name: args.pod_name.clone(),
        listen: args.listen,
        state_dir: args.state_dir.clone(),
        kubeconfig: args.kubeconfig.clone(),
        no_kubernetes: args.no_kubernetes,
        remove_conditions: args.remove_conditions,
        version: env!("CARGO_PKG_VERSION").to_string(),
        revision: option_env!("NODE_DOCTOR_REVISION")
            .unwrap_or("unknown")
            .to_string(),
    })?;
    Ok(super::EXIT_OK)
}
