export default function Loading() {
  return (
    <div aria-busy="true" aria-label="loading">
      <div className="skeleton" style={{ height: 28, width: 240, marginBottom: 16 }} />
      <div className="skeleton" />
    </div>
  );
}
