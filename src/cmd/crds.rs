//! `bindery crds`: prints KubeStellar's five CRDs (what a WDS needs), or with `--its` the
//! stand-ins a test ITS needs (OCM's ManagedCluster, the status add-on's WorkStatus).

use anyhow::Result;

/// The flags of `bindery crds`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the ITS's CRDs instead: permissive stand-ins of OCM's ManagedCluster and of
    /// the OCM status add-on's WorkStatus, for test API servers.
    #[arg(long)]
    its: bool,
}

/// `bindery crds`: the CRDs as one YAML stream on stdout.
pub fn execute(args: Args) -> Result<()> {
    let crds = if args.its {
        bindery_api::its_crds()
    } else {
        bindery_api::crds()
    };
    Ok(crate::cmd::stdout::print(&bindery_api::to_yaml(&crds))?)
}
