import { api, permissions } from '../../../../server/api';
import { found } from '../../../../server/found';
import { Crumbs, Missing } from '../../../../components/ui';
import { AlertRules } from '../../../../components/AlertRules';

export const dynamic = 'force-dynamic';

/** A project's settings: its alert rules and their delivery log. */
export default async function ProjectSettingsPage(props: { params: Promise<{ projectId: string }> }) {
  const { projectId } = await props.params;
  const caller = await api();
  const [project, { canLaunch }] = await Promise.all([found(caller.projects.get({ id: projectId })), permissions()]);
  if (!project) return <Missing what={`Project ${projectId}`} />;
  const alerts = await caller.alerts.list({ projectId });
  return (
    <>
      <Crumbs items={[{ href: `/projects/${project.id}`, label: project.name }, { label: 'Settings' }]} />
      <h1>Settings of {project.name}</h1>
      <h2>Alerts</h2>
      <div className="sub">
        When a run of this project degrades, fails or crosses a metric threshold, or a sweep finishes, AFT Lab posts a
        Slack-compatible JSON message to the rule&apos;s webhook, signed with the rule&apos;s secret (
        <code>X-AFT-Signature</code>: HMAC-SHA256 of <code>timestamp.body</code>), retrying until the receiver answers
        2xx. Each rule fires once per run (once per sweep).
      </div>
      <AlertRules projectId={project.id} canEdit={canLaunch} initial={JSON.parse(JSON.stringify(alerts))} />
    </>
  );
}
