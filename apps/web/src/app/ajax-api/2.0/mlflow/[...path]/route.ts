import { server } from '../../../../../server/api';

export const dynamic = 'force-dynamic';

// The MLflow-compatible API (libs/api/src/mlflow): point MLFLOW_TRACKING_URI at this server.
// every method goes to the handler, so one MLflow does not define gets its 405 in MLflow's {error_code, message}
const handle = (req: Request) => server().mlflow(req);
export { handle as GET, handle as POST, handle as PUT, handle as PATCH, handle as DELETE };
