// Lint for the whole monorepo. Module boundaries are the layers of docs/architecture.md, enforced:
// aft-core trains and knows nothing of databases, queues, HTTP or React; the web bundle never imports TensorFlow.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import nx from '@nx/eslint-plugin';
import reactHooks from 'eslint-plugin-react-hooks';
import prettier from 'eslint-config-prettier';

const serverOnly = ['@prisma/*', 'pg', 'bullmq', 'ioredis', 'next', 'next/*', 'react', 'react-dom', '@trpc/*'];

const DEP_CONSTRAINTS = [
  {
    sourceTag: 'type:ml',
    onlyDependOnLibsWithTags: ['type:ml'],
    bannedExternalImports: [...serverOnly, '@tanstack/*', 'uplot'],
  },
  {
    sourceTag: 'type:data',
    onlyDependOnLibsWithTags: ['type:data'],
    bannedExternalImports: ['@tensorflow/*', 'next', 'react', '@trpc/*', 'bullmq'],
  },
  {
    sourceTag: 'type:contract',
    onlyDependOnLibsWithTags: ['type:contract'],
    bannedExternalImports: ['@tensorflow/*', '@prisma/*', 'pg', 'next', 'react'],
  },
  {
    sourceTag: 'type:sdk',
    onlyDependOnLibsWithTags: ['type:contract'],
    bannedExternalImports: ['@tensorflow/*', '@prisma/*', 'pg', 'next', 'react', 'bullmq'],
  },
  {
    sourceTag: 'type:api',
    onlyDependOnLibsWithTags: ['type:data', 'type:contract'],
    bannedExternalImports: ['@tensorflow/*', 'next', 'react'],
  },
  {
    sourceTag: 'scope:web',
    onlyDependOnLibsWithTags: ['type:api', 'type:contract', 'type:data'],
    bannedExternalImports: ['@tensorflow/*'],
  },
  {
    sourceTag: 'scope:worker',
    onlyDependOnLibsWithTags: ['type:ml', 'type:contract', 'type:sdk'],
    bannedExternalImports: ['@prisma/*', 'pg', 'next', 'react'],
  },
  {
    sourceTag: 'scope:tools',
    onlyDependOnLibsWithTags: ['type:ml', 'type:contract', 'type:sdk', 'type:data', 'type:api'],
  },
];

const boundaryOptions = (allow) => ({
  enforceBuildableLibDependency: false,
  allow,
  depConstraints: DEP_CONSTRAINTS,
});

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/.next/**',
      '**/dist/**',
      '**/generated/**',
      '**/next-env.d.ts',
      'e2e/artifacts/**',
      '.nx/**',
      'tmp/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { '@nx': nx },
    rules: {
      '@nx/enforce-module-boundaries': ['error', boundaryOptions([])],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // Tests may enter the fixtures' doors (`@aft/db/testing`, `@aft/api/testing`) to stand up real services.
    files: ['**/test/**/*.ts', '**/*.test.ts'],
    rules: {
      '@nx/enforce-module-boundaries': ['error', boundaryOptions(['@aft/db/testing', '@aft/api/testing'])],
    },
  },
  {
    files: ['apps/web/**/*.tsx', 'apps/web/**/*.ts'],
    plugins: { 'react-hooks': reactHooks },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'warn',
    },
  },
  prettier,
);
