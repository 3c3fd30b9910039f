//! What a stack's status means for the next deploy, and what to tell the operator about a
//! stack left in a failed state.

/// What deploy does with a stack, given the status it found it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No stack of that name: create_stack.
    Create,
    /// Made by a change set never executed (REVIEW_IN_PROGRESS): a change set of type CREATE.
    CreateByChangeSet,
    /// A change set of type UPDATE.
    Update,
    /// Its creation failed: delete it, then create it again (only with --recreate-failed).
    Recreate,
    /// Deploy will not touch it; the text says why and what to do.
    Refuse(String),
}

/// The decision for a stack found in `status` (`None`: no such stack).
pub fn action_for(
    status: Option<&str>,
    stack_name: &str,
    region: &str,
    recreate_failed: bool,
) -> Action {
    let Some(status) = status else {
        return Action::Create;
    };
    match status {
        "CREATE_COMPLETE"
        | "UPDATE_COMPLETE"
        | "UPDATE_ROLLBACK_COMPLETE"
        | "IMPORT_COMPLETE"
        | "IMPORT_ROLLBACK_COMPLETE"
        | "UPDATE_FAILED" => Action::Update,
        "REVIEW_IN_PROGRESS" => Action::CreateByChangeSet,
        "ROLLBACK_COMPLETE" | "CREATE_FAILED" | "ROLLBACK_FAILED" if recreate_failed => {
            Action::Recreate
        }
        "ROLLBACK_COMPLETE" | "CREATE_FAILED" | "ROLLBACK_FAILED" => Action::Refuse(format!(
            "{stack_name} is in {status}: its creation failed, and a stack in that state cannot be updated. \
             Re-run with --recreate-failed to delete it and create it again, or delete it yourself: \
             aws cloudformation delete-stack --stack-name {stack_name} --region {region}"
        )),
        "UPDATE_ROLLBACK_FAILED" => Action::Refuse(format!(
            "{stack_name} is in UPDATE_ROLLBACK_FAILED: an update failed and so did its rollback. \
             Look at its events for the resource that could not roll back, fix it by hand, then run \
             aws cloudformation continue-update-rollback --stack-name {stack_name} --region {region} \
             (add --resources-to-skip LOGICAL_ID for a resource that cannot be brought back), wait for \
             UPDATE_ROLLBACK_COMPLETE and deploy again"
        )),
        "DELETE_FAILED" => Action::Refuse(format!(
            "{stack_name} is in DELETE_FAILED: a deletion did not finish. Delete it again (aws cloudformation \
             delete-stack --stack-name {stack_name} --region {region}, with --retain-resources for what cannot \
             be deleted) before deploying"
        )),
        s if s.ends_with("_IN_PROGRESS") => Action::Refuse(format!(
            "{stack_name} is busy ({s}): another operation is running on it. Wait for it to finish \
             (aws cloudformation describe-stack-events --stack-name {stack_name} --region {region}) and deploy again"
        )),
        s => Action::Refuse(format!(
            "{stack_name} is in {s}, a status deploy does not know how to continue from"
        )),
    }
}

/// A status in which CloudFormation has finished with the stack.
pub fn is_terminal(status: &str) -> bool {
    !status.ends_with("_IN_PROGRESS")
}

/// The statuses a deployment is meant to end in.
pub fn is_success(status: &str) -> bool {
    matches!(
        status,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE"
    )
}

/// What state a failed stack is left in, and what to do next, in sentences.
pub fn failure_advice(
    status: Option<&str>,
    stack_name: &str,
    region: &str,
    rerun: &str,
) -> Vec<String> {
    match status {
        None => vec![
            format!(
                "No stack {stack_name} exists: CloudFormation refused it before creating anything."
            ),
            format!("Fix the cause above and run again: {rerun}"),
        ],
        Some("ROLLBACK_COMPLETE") => vec![
            format!(
                "{stack_name} is in ROLLBACK_COMPLETE: its creation was rolled back and it holds no resources."
            ),
            format!(
                "Fix the cause above, then run again with --recreate-failed (it deletes the empty stack and creates it anew): {rerun} --recreate-failed"
            ),
        ],
        Some("ROLLBACK_FAILED") => vec![
            format!(
                "{stack_name} is in ROLLBACK_FAILED: the rollback of its creation failed too; some resources may remain."
            ),
            format!(
                "Delete it (aws cloudformation delete-stack --stack-name {stack_name} --region {region}, with --retain-resources for what cannot be deleted), then run again: {rerun}"
            ),
        ],
        Some("UPDATE_ROLLBACK_COMPLETE") => vec![
            format!(
                "{stack_name} is in UPDATE_ROLLBACK_COMPLETE: the update was rolled back and the stack runs as it did before."
            ),
            format!("Fix the cause above and run again: {rerun}"),
        ],
        Some("UPDATE_ROLLBACK_FAILED") => vec![
            format!(
                "{stack_name} is in UPDATE_ROLLBACK_FAILED: the update failed and its rollback did not finish."
            ),
            format!(
                "Fix the resource that could not roll back, then aws cloudformation continue-update-rollback --stack-name {stack_name} --region {region} (with --resources-to-skip LOGICAL_ID for one that cannot), and when it is UPDATE_ROLLBACK_COMPLETE run again: {rerun}"
            ),
        ],
        Some(s @ ("CREATE_FAILED" | "UPDATE_FAILED")) => vec![
            format!("{stack_name} is in {s} and was not rolled back."),
            format!(
                "Roll it back (aws cloudformation rollback-stack --stack-name {stack_name} --region {region}) or fix the cause and run again: {rerun}"
            ),
        ],
        Some(s) if s.ends_with("_IN_PROGRESS") => vec![
            format!("{stack_name} is still {s}; CloudFormation goes on with it."),
            format!(
                "Watch it (aws cloudformation describe-stack-events --stack-name {stack_name} --region {region}); when it has finished, fix the cause and run again: {rerun}"
            ),
        ],
        Some(s) => vec![
            format!("{stack_name} is in {s}."),
            format!("Fix the cause above and run again: {rerun}"),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_decides_the_action() {
        let act = |s, flag| action_for(s, "voltfleet-staging-data", "eu-west-1", flag);
        assert_eq!(act(None, false), Action::Create);
        assert_eq!(act(Some("CREATE_COMPLETE"), false), Action::Update);
        assert_eq!(act(Some("UPDATE_ROLLBACK_COMPLETE"), false), Action::Update);
        assert_eq!(
            act(Some("REVIEW_IN_PROGRESS"), false),
            Action::CreateByChangeSet
        );
        assert_eq!(act(Some("ROLLBACK_COMPLETE"), true), Action::Recreate);
        let Action::Refuse(why) = act(Some("ROLLBACK_COMPLETE"), false) else {
            panic!("a failed creation is not recreated without the flag");
        };
        assert!(why.contains("--recreate-failed"), "{why}");
        let Action::Refuse(why) = act(Some("UPDATE_ROLLBACK_FAILED"), true) else {
            panic!("UPDATE_ROLLBACK_FAILED is refused even with the flag");
        };
        assert!(
            why.contains("aws cloudformation continue-update-rollback --stack-name voltfleet-staging-data --region eu-west-1"),
            "{why}"
        );
        let Action::Refuse(why) = act(Some("UPDATE_IN_PROGRESS"), false) else {
            panic!("a busy stack is left alone");
        };
        assert!(why.contains("busy (UPDATE_IN_PROGRESS)"), "{why}");
    }

    #[test]
    fn terminal_and_success() {
        assert!(!is_terminal("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"));
        assert!(!is_terminal("UPDATE_ROLLBACK_IN_PROGRESS"));
        assert!(is_terminal("UPDATE_ROLLBACK_COMPLETE"));
        assert!(is_success("UPDATE_COMPLETE"));
        assert!(!is_success("UPDATE_ROLLBACK_COMPLETE"));
        assert!(!is_success("ROLLBACK_COMPLETE"));
    }

    #[test]
    fn advice_names_the_way_out() {
        let advice = failure_advice(
            Some("UPDATE_ROLLBACK_FAILED"),
            "voltfleet-production-app",
            "eu-west-1",
            "voltfleet-provision deploy --env e.json",
        );
        assert!(advice.join(" ").contains(
            "continue-update-rollback --stack-name voltfleet-production-app --region eu-west-1"
        ));
        let advice = failure_advice(Some("ROLLBACK_COMPLETE"), "s", "r", "cmd");
        assert!(advice[1].ends_with("cmd --recreate-failed"), "{advice:?}");
    }
}
