import { server } from '../../server/api';

export const dynamic = 'force-dynamic';

// The MLflow-compatible API (libs/api/src/mlflow): point MLFLOW_TRACKING_URI at this server.
const handle = (req: Request) => server().mlflow(req);
export { handle as GET, handle as POST, handle as PUT };
